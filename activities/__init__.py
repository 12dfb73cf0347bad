"""Activities: thin side effects (database, treasury, SMS) called by the workflows."""
