"""The SSCN network, one file per part of the paper's Fig. 2."""
from .sscn import SSCN, SSCNConfig, SSCNOutput

__all__ = ["SSCN", "SSCNConfig", "SSCNOutput"]
