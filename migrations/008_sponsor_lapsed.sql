-- A service whose sponsor was offboarded stays unusable until an admin assigns it a sponsor
-- (CONTRACT "Principals"), even if that sponsor is reinstated.
ALTER TABLE principals ADD COLUMN sponsor_lapsed boolean NOT NULL DEFAULT false;
