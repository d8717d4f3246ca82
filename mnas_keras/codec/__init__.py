"""Block-string codec, architecture table and scaling rules. Imports no TensorFlow."""

from mnas_keras.codec.architectures import ARCHITECTURES, Architecture, get_architecture, minimalistic, reduced_tail
from mnas_keras.codec.blocks import BlockSpec, decode, encode
from mnas_keras.codec.cells import CELL_OPS, CellBlock, CellSpec, decode_cell, encode_cell
from mnas_keras.codec.errors import BlockStringError, CellStringError, MacroStringError
from mnas_keras.codec.macro import MacroLayer, MacroSpec, decode_macro, encode_macro
from mnas_keras.codec.options import NetworkOptions
from mnas_keras.codec.scaling import make_divisible, round_filters, round_repeats

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "BlockSpec",
    "BlockStringError",
    "CELL_OPS",
    "CellBlock",
    "CellSpec",
    "CellStringError",
    "MacroLayer",
    "MacroSpec",
    "MacroStringError",
    "NetworkOptions",
    "decode",
    "decode_cell",
    "decode_macro",
    "encode",
    "encode_cell",
    "encode_macro",
    "get_architecture",
    "make_divisible",
    "minimalistic",
    "reduced_tail",
    "round_filters",
    "round_repeats",
]
