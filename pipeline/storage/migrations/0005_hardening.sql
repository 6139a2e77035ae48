-- 0005: reserved for the change that adds it (no schema change yet).
SELECT 1;
