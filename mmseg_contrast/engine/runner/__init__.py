from .teacher_student_val_loop import TeacherStudentValLoop  # noqa: F401
