"""hotport.engine."""
