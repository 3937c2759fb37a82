-- Placeholder for migration 006, which the expiry-legs branch owns (expiry_greeks, position_legs):
-- migrations must be numbered without gaps, and 007 (the P&L explain) comes after it. On merge,
-- take that branch's 006 and delete this file.
SELECT 1;
