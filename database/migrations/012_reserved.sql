-- Reserved: version 012 belongs to a migration of a branch merged in parallel (this branch's is
-- 013, and versions must run 1..n without gaps). Delete this file when that one lands.
SELECT 1;
