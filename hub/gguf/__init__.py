"""GGUF files (llama.cpp): read by ranges, named and shaped as the source Hugging Face model.

    header   the bounded header parser (ranged reads, versions 2 and 3)
    names    GGUF tensor names -> HF names per architecture; which tensors the converter
             permuted (rotary q/k) or transposed (GPT-2 Conv1D)
    codec    the byte ranges of a window and their decoding (gguf.quants) in HF order
    opener   `open_gguf`: the opener `hub.formats.FILE_FORMATS` names for the `gguf` layout

Nothing here is imported until a GGUF file is opened; the `gguf` package (llama.cpp's
gguf-py) is imported then. docs/formats.md says what is read and what is left out.
"""
