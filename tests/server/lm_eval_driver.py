"""Runs stock lm-evaluation-harness (its public `simple_evaluate`) over local tasks and
prints each item's responses as JSON: the test starts it in a fresh process, offline.

    python lm_eval_driver.py TASK_DIR RUNS_JSON
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    task_dir, runs = sys.argv[1], json.loads(sys.argv[2])
    manager = TaskManager(include_path=task_dir)
    out = {}
    for name, run in runs.items():
        results = lm_eval.simple_evaluate(
            model=run["model"], model_args=run["model_args"], tasks=run["tasks"],
            batch_size=run.get("batch_size", 1), device="cpu", log_samples=True,
            task_manager=manager,
            apply_chat_template=run.get("apply_chat_template", False))
        out[name] = {task: {sample["doc_id"]: sample["resps"] for sample in samples}
                     for task, samples in results["samples"].items()}
    print("RESULTS " + json.dumps(out))


if __name__ == "__main__":
    main()
