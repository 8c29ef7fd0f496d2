"""CompressAI reference codecs (``bmshj2018``, ``mbt2018``, ``cheng2020-attn``, ...) and their trainer.

``codecs`` holds the codecs; ``training`` (the ``sedic-kit train-codec`` command) builds on
them, never the other way round.
"""

from sedic_kit.hookspecs import Register, hookimpl

from .codecs import CODECS
from .training import add_train_command


@hookimpl
def register_reference_codecs(register: Register) -> None:
    for cls in CODECS:
        register(cls)


@hookimpl
def register_commands(cli):  # type: ignore[no-untyped-def]
    add_train_command(cli)
