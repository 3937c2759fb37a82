-- Reserved: version 008 belongs to a migration of a branch merged in parallel (issue #17's branch
-- uses 009, and versions must run 1..n without gaps). Delete this file when that one lands.
SELECT 1;
