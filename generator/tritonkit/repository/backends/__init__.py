"""repository/backends."""
