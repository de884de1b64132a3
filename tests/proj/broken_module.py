raise ImportError("this module always fails to import")
