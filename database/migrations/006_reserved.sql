-- Placeholder on the revaluation branch only: migration 006 belongs to another branch of issue
-- #16 (migration numbers have no gaps, and this branch's is 008). Delete this file when that
-- branch's 006 lands.
SELECT 1;
