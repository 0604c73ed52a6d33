//! Image references (owned by the registry work; placeholder).
