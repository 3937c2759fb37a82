-- Placeholder: version 10 is another branch's (lean-budget); the integrator replaces this file
-- with that migration. `migrations()` refuses gaps, so 011 needs a 010 to run before it.
SELECT 1;
