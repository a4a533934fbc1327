"""Media work: sniffing, probing, the ladder, chunk plans, ffmpeg commands and runs,
images, subtitles and CMAF boxes. Nothing here knows of S3 or Step Functions."""
