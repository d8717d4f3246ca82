"""NetAdapt (Yang et al., ECCV 2018; MobileNetV3 section 4.2): shrink a trained network
layer by layer under a latency source until it meets a latency target.

* :mod:`.proposals`: the proposals on block strings (no TensorFlow).
* :mod:`.surgery`: narrower copies that inherit the parent's weights by truncation.
"""

from mnas_keras.search.netadapt.proposals import (
    Proposal,
    ProposalError,
    apply,
    find_proposal,
    flatten,
    merge,
    proposals,
    width_groups,
)

__all__ = ["Proposal", "ProposalError", "apply", "find_proposal", "flatten", "merge", "proposals", "width_groups"]
