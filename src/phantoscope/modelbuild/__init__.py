"""Building the built-in models: export to ONNX (torch) and static int8 quantisation (onnx).
Run as child processes (``python -m``); the server and the serving path never import these."""
