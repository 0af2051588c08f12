"""ONNX exports (optimum, transformers.js): weights read by byte range, never the whole file.

    wire     the protobuf wire format over ranged reads, bounded (`Cursor`)
    proto    the graph's initializers and nodes (`read_graph`)
    names    which initializers are weights, under which Hugging Face names, transposed or
             quantized (`weights`)
    codec    one weight's window: floats, transposed MatMul weights, int8/uint8 dequantized
    opener   `open_onnx`, the `onnx` layout's opener in `hub.formats.FILE_FORMATS`

Nothing here imports the `onnx` package: it is needed only to write exports
(`lineage.lab.formats_onnx`).
"""
