"""Small helpers every stage uses: data folders, text files, processes, the GPU, atomic files."""
