"""Code that runs inside Triton, copied into a repository or a backend folder as model.py.

They import only numpy, tokenizers and onnxruntime, never tritonkit: the server's Python
environment has no tritonkit. tritonkit imports them (their Triton import is guarded) so that
the rules they apply at run time, such as the tokenizer's padding, are written once.
"""
