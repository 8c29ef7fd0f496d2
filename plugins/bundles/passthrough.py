"""Weight-free plugins: the ``none`` describer, ``passthrough`` grounder and ``box`` segmenter."""

from sedic_kit.hookspecs import Register, hookimpl

from ..describers.none import NoDescriber
from ..grounders.passthrough import PassthroughGrounder
from ..segmenters.box import BoxSegmenter


@hookimpl
def register_describers(register: Register) -> None:
    register(NoDescriber)


@hookimpl
def register_grounders(register: Register) -> None:
    register(PassthroughGrounder)


@hookimpl
def register_segmenters(register: Register) -> None:
    register(BoxSegmenter)
