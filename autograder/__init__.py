"""Course-staff tooling: the handout release and (later) the grader."""
