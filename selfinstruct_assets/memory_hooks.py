"""After every asset step, the run's process gives the memory the step freed back to the operating system.

    ASSETS = [a.with_hooks(RELEASE_HOOKS) for a in assets]   # definitions.py: every job, the UI's too

The default executor runs every step in one process (torch and the models load once per run). Without this, the
C heap keeps what each step freed, so the process's resident size only grows from step to step and a training
child, started next, adds its own peak on top. The hook only collects and trims (`release_memory(drop_caches=
False)`): models and embeddings that later steps reuse stay loaded.

Importing this module also caps glibc's malloc arenas at 2 (`tune_malloc`, unless MALLOC_ARENA_MAX is set): every
process that loads the definitions (the demo, `make benchmark`, Dagster's run workers) does so before any step
starts the threads that would otherwise each get an arena of their own.
"""

import dagster as dg

from selfinstruct.core.memory import release_memory, tune_malloc

tune_malloc()

MIN_LOGGED_GIB = 0.05  # smaller releases are not worth a log line


def release_after_step(context: dg.HookContext) -> tuple[float | None, float | None]:
    before, after = release_memory(drop_caches=False)
    if before is not None and after is not None and before - after >= MIN_LOGGED_GIB:
        context.log.info(f"after {context.step_key} this process released memory: RSS {before:.2f} -> {after:.2f} GiB")
    return before, after


@dg.success_hook(name="release_memory_after_success")
def release_memory_after_success(context: dg.HookContext) -> None:
    release_after_step(context)


@dg.failure_hook(name="release_memory_after_failure")
def release_memory_after_failure(context: dg.HookContext) -> None:
    release_after_step(context)


RELEASE_HOOKS = {release_memory_after_success, release_memory_after_failure}
