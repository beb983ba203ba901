"""Ray, behind this door only, on the training side: the Ray Train driver and its
checkpoint storage, the task fan-out of the SVM grid, predict's batch scoring chain."""
