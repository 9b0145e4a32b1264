"""Files, photos and checkpoints on disk: safe writes, image folders, checkpoint checks."""
