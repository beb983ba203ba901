"""The experiment layer: the pure core of `ctt` run on Ray and recorded to MLflow. Ray
lives in `distributed/` (one module per job: the Train driver, the task fan-out, batch
scoring), MLflow in `tracking/`; the modules beside them are the jobs' entry points."""
