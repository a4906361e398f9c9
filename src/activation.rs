//! TODO: activation
