"""The Drone Scheduler: offers each delivery's job to a feasible drone until one takes it."""
