"""Who may do what: the instructor key, the students' identity, access codes, limits."""
