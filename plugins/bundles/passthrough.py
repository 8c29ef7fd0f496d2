"""Weight-free plugins: the ``none`` describer, ``passthrough`` grounder and ``box`` segmenter."""

from ..describers.none import register_describers
from ..grounders.passthrough import register_grounders
from ..segmenters.box import register_segmenters

__all__ = ["register_describers", "register_grounders", "register_segmenters"]
