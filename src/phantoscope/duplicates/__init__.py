"""Copies and similar shots among an application's images (issue 18): the descriptors kept
of each image, how two images are judged, and how pairs become groups. No store and no model
here: the engine reads the stores, and the encoder's vectors come with the upload."""
