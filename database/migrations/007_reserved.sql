-- Placeholder on the revaluation branch only: migration 007 belongs to another branch of issue
-- #16 (migration numbers have no gaps, and this branch's is 008). Delete this file when that
-- branch's 007 lands.
SELECT 1;
