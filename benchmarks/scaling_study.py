"""The scaling study at 224x224 for benchmarks/RESULTS.md (run once, with ``nice``).

Measures MnasNet-A1, MnasNet-B1, MobileNetV3-Large/Small and the search space's MobileNetV2
reference at width multipliers 0.35, 0.5, 0.75, 1.0 and 1.4 (fp32 and int8 LiteRT, one
thread, drift-corrected against MnasNet-A1 1.0), then prints the markdown table with the
published Pixel-1 latencies next to ours. Resumable: re-running skips measured points.

    nice -n 10 python benchmarks/scaling_study.py --out=runs/scaling_224
"""

import sys

from mnas_keras.search import scaling

if __name__ == "__main__":
    argv = ["--sizes=224", "--widths=0.35,0.5,0.75,1.0,1.4", "--table", *sys.argv[1:]]
    sys.exit(scaling.main(argv))
