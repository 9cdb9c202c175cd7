# Frames fixture: raises while being imported.
raise ImportError("fixture import failure")
