"""The model assets in the jobs: main_job trains them, the loop's jobs do not retrain them.

The assets themselves are tested in tests/test_retrievers.py and tests/test_answer_judge.py."""


def test_main_job_selects_the_model_assets_and_the_loop_jobs_do_not_retrain_them():
    from selfinstruct_assets.definitions import defs
    from selfinstruct_assets.loop.jobs import LOOP_JOBS

    d = defs()
    main = {k.to_user_string() for k in d.resolve_job_def("main_job").asset_layer.executable_asset_keys}
    assert {"retriever_model", "answer_judge", "retrieval_eval", "ai_feedback"} <= main
    for job in LOOP_JOBS:
        keys = {k.to_user_string() for k in d.resolve_job_def(job.name).asset_layer.executable_asset_keys}
        assert not keys & {"retriever_model", "answer_judge"}, job.name
