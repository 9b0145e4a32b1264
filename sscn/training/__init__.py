"""Learning the weights: configs and recipes, losses, precision, the SSCN trainer and the pre-stage (paper, Sec. 3.3)."""
