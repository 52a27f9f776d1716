"""Family-doctor contracting (家庭医生签约服务): teams with member roles, service packages per
population group, contracts (sign, renew, change team, terminate), fulfilment, the team task
inbox, fee settlement (80 % prepaid, the rest by performance) and the coverage / management
measures.

Calls `chronic` (follow-ups and control status count towards fulfilment and quality),
`record`, `registry`, `profiles`, `audit` and `identity.access` (it registers the "contract"
care relationship). `referral` (issue 5) sits above it and calls `active_contract` and
`add_team_task`."""
