"""Two-way referral (双向转诊) with a closed loop: the rules that say when a case should go up or
down (000 §三(一)2, 001 §三(一)3, 003 §二(五)17), the workflow draft → submitted → accepted /
rejected → scheduled → arrived → completed (and cancelled / expired, escalated to the
coordinator), modelled on FHIR ServiceRequest + Task; one registration and one deductible
across a referral (001 §三(二)5; 004 §四(三)2); monitoring for the coordinator (002 §四(三)1
转诊监测制度).

Calls: capacity (slots, beds, registration), record (recent results, encounters), registry
(catalogues by level), profiles (time limits), identity (access), audit."""
