"""Online procedures (issue 7): the catalog as data, signed applications, the work queue and
notifications. Life events (moving, birth) live in `life_events`."""
