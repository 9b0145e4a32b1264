"""Measuring the results: the self-augmentation protocol, baselines, tables, same-class pairs, the CAM test (paper, Sec. 4)."""
