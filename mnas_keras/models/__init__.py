"""The model builder, the ``MnasNet`` backbone and the profiler."""

from mnas_keras.codec.options import NetworkOptions
from mnas_keras.models.backbone import MnasNet
from mnas_keras.models.builder import BuildOptions, LayerKit, build_block, build_graph, build_head, build_stem
from mnas_keras.models.profiler import LayerProfile, Profile, profile

__all__ = ["BuildOptions", "LayerKit", "LayerProfile", "MnasNet", "NetworkOptions", "Profile", "build_block", "build_graph",
           "build_head", "build_stem", "profile"]
