"""MLflow, behind this door only: where runs go (`connection`), what a run records
(`recording`), reading runs back (`reading`), the servable model package (`model_package`)
and the Model Registry (`registry`)."""
