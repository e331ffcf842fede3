//! Optimizers, schedules and gradient clipping (in progress: issue 3).
