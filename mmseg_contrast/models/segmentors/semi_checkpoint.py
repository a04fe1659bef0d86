"""State-dict hooks of :class:`~mmseg_contrast.models.SemiSegmentor`: the
teacher is saved under the plain segmentor keys, and a plain checkpoint
loads into both branches."""


def teacher_as_plain_keys(module, state_dict, prefix, local_metadata):
    """``state_dict`` hook: ``teacher.*`` -> the plain keys (``student.*``
    stays), so a semi checkpoint loads into the plain config."""
    tp = prefix + 'teacher.'
    for k in [k for k in state_dict if k.startswith(tp)]:
        state_dict[prefix + k[len(tp):]] = state_dict.pop(k)
    return state_dict


def map_loaded_keys(state_dict, prefix, *args, **kwargs):
    """``load_state_dict`` pre-hook: in our own checkpoint the plain keys
    are the teacher; a plain (supervised) checkpoint goes to both
    branches."""
    own = ('student.', 'teacher.', 'data_preprocessor.', 'mixer.')
    rel = {k: k[len(prefix):] for k in list(state_dict)
           if k.startswith(prefix)}
    has_student = any(r.startswith('student.') for r in rel.values())
    has_teacher = any(r.startswith('teacher.') for r in rel.values())
    for k, r in rel.items():
        if r.startswith(own):
            continue
        v = state_dict.pop(k)
        if has_student:  # our own checkpoint: plain keys = teacher
            state_dict[prefix + 'teacher.' + r] = v
        else:  # a plain supervised checkpoint -> both branches
            state_dict[prefix + 'student.' + r] = v
            if not has_teacher:
                state_dict[prefix + 'teacher.' + r] = v
