//! Layers around the recurrent stack (in progress: issue 3).
