-- Run once by the mysql image when its data volume is new, after it has created
-- MYSQL_DATABASE (the backend's) and MYSQL_USER. The gateway keeps its own
-- schema (users, sessions, rate limits, certificates) in a database of its own.
CREATE DATABASE IF NOT EXISTS claude_gateway CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
GRANT ALL PRIVILEGES ON claude_gateway.* TO 'claude'@'%';
