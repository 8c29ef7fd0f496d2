"""``vllm`` describer: a LLaVA-class model run in-process by ``vllm.LLM`` (GPU only).

vllm pins its own torch and transformers, so install it in a separate environment (README's GPU
environment: ``pip install -e '.[vllm,diffusion,transformers,compressai]'`` in the checkout, without
``torch==2.13.0``). It is imported only when the
engine starts. Prompt, JSON schema (used for guided decoding) and parsing are the shared ones in
:mod:`sedic_kit.prompting`; messages are OpenAI-style, which ``LLM.chat`` accepts with data URIs.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sedic_kit.file_sets import LLAVA
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.model_files import require
from sedic_kit.models import ModelSpec
from sedic_kit.payload import Payload, SourceImage
from sedic_kit.prompting import LMMDescriptionOptions, chat_messages, describe_with, description_schema, image_data_uri
from sedic_kit.roles import Describer

LLAVA_EXTRAS = ("*.json", "*.model", "*.txt", "*.jinja")


class VllmOptions(LMMDescriptionOptions):
    model: str = Field("llava-hf/llava-1.5-7b-hf", description="hub id (cached) or local directory")
    max_image_side: int = Field(672, ge=64, le=4096, description="image sent resized to this longer side")
    guided: bool = Field(True, description="constrain decoding to the description JSON schema")
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="share of GPU memory vLLM may take")
    max_model_len: int = Field(4096, ge=512, description="context length (prompt + image tokens + answer)")
    dtype: str = "auto"
    seed: int = 0


class VllmDescriber(Describer[VllmOptions]):
    """Caption and objects from a local LLaVA model served in-process by vLLM."""

    name = "vllm"
    requires = ("vllm",)
    extra = "vllm"

    def __init__(self, options: VllmOptions | None = None, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self._llm: Any = None

    def required_models(self) -> list[ModelSpec]:
        return [ModelSpec("describer.model", self.options.model, allow_patterns=LLAVA_EXTRAS, needs=LLAVA)]

    def engine(self) -> Any:
        if self._llm is None:
            self.check_available()
            path = require(self.required_models()[0])
            from vllm import LLM

            o = self.options
            self._llm = LLM(
                model=str(path),
                dtype=o.dtype,
                seed=o.seed,
                gpu_memory_utilization=o.gpu_memory_utilization,
                max_model_len=o.max_model_len,
                limit_mm_per_prompt={"image": 1},
            )
        return self._llm

    def release(self) -> None:
        """Shut the engine down and free its GPU pool, as vLLM's own shutdown tests and maintainers do:
        stop the engine core (in vLLM's default multiprocess mode the process holding the pool exits;
        in-process, its executor's workers are shut down), drop the engine, then
        ``vllm.distributed.cleanup_dist_env_and_memory`` (model-parallel groups, garbage, CUDA cache).
        The next ``describe`` starts a new engine."""
        llm, self._llm = self._llm, None
        if llm is None:
            return
        core = getattr(llm.llm_engine, "engine_core", None)  # the V1 engine's core client (absent in V0)
        if core is not None:
            core.shutdown()
        del llm
        from vllm.distributed import cleanup_dist_env_and_memory

        cleanup_dist_env_and_memory()

    def sampling_params(self) -> Any:
        """Greedy (or sampled) decoding, constrained to the schema by the vllm version's API."""
        import vllm

        o = self.options
        kwargs: dict[str, Any] = {"temperature": o.temperature, "max_tokens": o.max_new_tokens, "seed": o.seed}
        if o.guided:
            schema = description_schema()
            if hasattr(vllm.sampling_params, "StructuredOutputsParams"):  # vllm >= 0.11
                kwargs["structured_outputs"] = vllm.sampling_params.StructuredOutputsParams(json=schema)
            else:
                kwargs["guided_decoding"] = vllm.sampling_params.GuidedDecodingParams(json=schema)
        return vllm.SamplingParams(**kwargs)

    def describe(self, source: SourceImage) -> Payload:
        uri = image_data_uri(source.image, self.options.max_image_side)
        llm, params = self.engine(), self.sampling_params()

        def ask(question: str) -> str:
            outputs = llm.chat(chat_messages(question, uri), params, use_tqdm=False)
            return outputs[0].outputs[0].text if outputs and outputs[0].outputs else ""

        return describe_with(ask, source, self.options, self.name)


@hookimpl
def register_describers(register: Register) -> None:
    register(VllmDescriber)
