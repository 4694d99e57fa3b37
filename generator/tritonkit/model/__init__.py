"""The model stage: a Hugging Face folder validated for a task, exported to one ONNX graph
with the task's post-processing inside, and the runners (PyTorch, ONNX Runtime) every later
stage compares with."""
