"""Running a check suite: workers, the implementation behind a pipe, reports, --impl, exec, baselines, shards."""
