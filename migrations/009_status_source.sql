-- Who set a principal's status last (admin, scim, hr, okta, ssf:<issuer>): a SCIM active:true
-- undoes only an offboarding SCIM made, not one HR or another identity provider made.
ALTER TABLE principals ADD COLUMN status_source text;
