"""docs/scaling.md holds only commands vLLM accepts and examples that run: every `vllm
serve` command in it is parsed (and validated) by the installed vLLM's own `vllm serve`
argument parser, and its Python examples run against the tier's server."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from vllm_server import python

pytestmark = pytest.mark.timeout(600)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"
PARSE = r"""
import json, shlex, sys
from vllm.entrypoints.cli.serve import ServeSubcommand
from vllm.entrypoints.launchers.cli_args import validate_parsed_serve_args
from vllm.utils.argparse_utils import FlexibleArgumentParser

parser = FlexibleArgumentParser(prog="vllm", exit_on_error=False)
ServeSubcommand().subparser_init(parser.add_subparsers(dest="subcommand"))
parsed = []
for command in json.load(sys.stdin):
    try:
        args = parser.parse_args(shlex.split(command)[1:])
        validate_parsed_serve_args(args)
    except (SystemExit, Exception) as error:  # argparse exits on an unknown flag
        parsed.append({"refused": repr(error)})
        continue
    parsed.append({k: getattr(args, k) for k in (
        "model_tag", "tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size",
        "headless", "max_logprobs", "distributed_executor_backend")})
print("PARSED" + json.dumps(parsed, default=str))
"""
MISSPELT = "vllm serve m --tensor-paralel-size 2"


def _commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", PAGE.read_text(), re.S)
    joined = "\n".join(block.replace("\\\n", " ") for block in blocks)
    return [re.sub(r"\s+", " ", line).strip() for line in joined.splitlines()
            if line.strip().startswith("vllm serve")]


def test_every_vllm_command_in_the_page_is_one_vllm_accepts():
    """...and a misspelt flag, parsed in the same run, is refused: the check would catch a
    flag vLLM does not have."""
    commands = _commands()
    assert len(commands) >= 6
    flags = " ".join(commands)
    for flag in ("--tensor-parallel-size", "--pipeline-parallel-size", "--data-parallel-size",
                 "--distributed-executor-backend ray", "--data-parallel-backend ray",
                 "--headless", "--max-logprobs", "--structured-outputs-config.backend"):
        assert flag in flags
    done = subprocess.run([str(python()), "-c", PARSE],
                          input=json.dumps(commands + [MISSPELT]),
                          capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    *parsed, misspelt = json.loads(done.stdout.split("PARSED", 1)[1])
    assert "refused" in misspelt and "tensor-paralel-size" in done.stderr
    assert [p for p in parsed if "refused" in p] == []
    assert any(p["pipeline_parallel_size"] == 2 and p["tensor_parallel_size"] == 8
               and p["distributed_executor_backend"] == "ray" for p in parsed)
    assert any(p["headless"] and p["data_parallel_size"] == 4 for p in parsed)


def test_the_python_examples_run_against_the_server(vllm_server):
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert blocks
    namespace: dict = {}
    for block in blocks:
        source = block.replace("http://HOST:8000/v1", vllm_server.base_url)
        source = re.sub(r'"openai/[\w.-]+"', '"openai/gemma"', source)
        exec(compile(source, str(PAGE), "exec"), namespace)
    assert namespace["big"].score_many_sync(namespace["prompts"], [" positive"],
                                            progress=False).complete
