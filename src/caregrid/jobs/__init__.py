"""Periodic work nobody clicks for: release unused reserved slots to the general pool a
profile-set time before the session (001 §三(三)1; 002 §四(三)1), expire referrals left
unanswered past the profile's time limit and escalate them to the coordinator (002 §四(三)1
转诊监测制度), and free slots whose hold lapsed. Run by `caregrid jobs run` or in-process by
the web server.

Calls: capacity, referral (their service functions, as the system actor)."""
